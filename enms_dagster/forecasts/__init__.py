"""Energy forecasts per machine and site and the SQL that feeds them."""
