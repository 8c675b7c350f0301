"""The KPI marts analysts query: hourly energy facts and daily KPIs with cost and CO2e."""
