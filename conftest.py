# eventlet must patch the standard library before anything imports socket or threading;
# nameko 2.14's pytest plugin no longer does it, so the root conftest does.
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # "Eventlet is deprecated": known, see docs/architecture.md
    import eventlet

eventlet.monkey_patch()
