"""Shipped procedures (cfg_yoda, cfg_text2git, cfg_noannex)."""
