"""Analytics with no Dagster in it: baselines, KPIs, anomalies and forecasts over DataFrames."""
