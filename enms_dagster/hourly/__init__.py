"""Hourly energy and drivers per machine and site, computed inside PostgreSQL."""
