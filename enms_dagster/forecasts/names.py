"""The forecast models by name, apart from the models themselves: the Dagster layer lists them in
its configuration without loading pandas, Prophet, statsmodels and scikit-learn."""

REFERENCE_MODEL = "seasonal_naive"  # the model every other one must beat
MODELS = (REFERENCE_MODEL, "prophet", "arimax", "gbm")
