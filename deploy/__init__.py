import warnings

# nameko 2.14 needs eventlet, which warns at import that it is in maintenance mode (known).
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
