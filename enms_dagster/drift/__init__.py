"""Baseline drift: two-sided CUSUM of daily residuals (``cusum``) and its storage (``store``)."""
