"""Customer data hub: pull, standardise, match, golden record, 360 view, push back — on Dagster."""
__version__ = "0.1.0"
