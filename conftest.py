# eventlet must patch the standard library before anything imports socket or threading;
# nameko 2.14's pytest plugin no longer does it, so the root conftest does — except for the
# browser tests (tests/browser, `make test-browser`), which run in a pytest process of their
# own without it: patched, Playwright's stop hangs. They start the services as subprocesses.
import os
import warnings

if os.environ.get("BUURTPEIL_NO_EVENTLET") != "1":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Eventlet is deprecated": known, docs/architecture.md
        import eventlet

    eventlet.monkey_patch()
