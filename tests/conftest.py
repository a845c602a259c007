"""The suite's fixtures live in tests/fixtures/ and are registered here, once.

never_harm judges every request kdebug sends to an emulator during the session (pytester: to test that
plugin); isolation gives every test its own XDG directories.
"""

pytest_plugins = [
    "tests.fixtures.isolation",
    "tests.fixtures.emulators",
    "tests.fixtures.pods",  # before cluster, which imports it: so pytest rewrites its asserts
    "tests.fixtures.cluster",
    "tests.fixtures.kdebug_cli",
    "tests.fixtures.never_harm",
    "pytester",
]
