"""Embedded reference scenarios shipped with coupler (see each folder's README.md)."""
