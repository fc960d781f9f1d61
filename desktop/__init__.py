"""Exo Bridge's desktop side (Qt). Imports router/, never the other way round."""
