"""Data shipped with fastem: the Old Faithful geyser eruptions (faithful.csv)."""
