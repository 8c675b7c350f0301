"""Anomaly detection on hourly energy and raw signals: the SQL that feeds the detectors."""
