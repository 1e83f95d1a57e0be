"""imiptools: the imip-agent library (iMIP/iTIP model, stores, policies)."""

__version__ = "0.1.0"
