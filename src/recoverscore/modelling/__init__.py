"""Models of recovery: debtor features, the LightGBM and scorecard models, explanations and
model evaluation."""
