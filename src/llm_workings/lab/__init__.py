"""The lab: a local web app whose pages draw what the engine computes."""
