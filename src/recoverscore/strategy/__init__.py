"""From probabilities to tiers: guardrails, policies, strategy comparison and off-policy
evaluation."""
