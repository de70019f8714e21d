"""hostops: Alteo's hosting and managed-services automation."""

__version__ = "0.1.0"
