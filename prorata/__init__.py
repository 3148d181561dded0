"""prorata: a subscription-billing engine whose heart is changing a subscription."""

__version__ = "0.1.0"
