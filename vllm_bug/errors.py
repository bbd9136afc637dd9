"""Exit codes and the exceptions that map to them.

Every command ends with one of these codes; anything the user gave that cannot be used ends in one
line on stderr (never a traceback) and one of the non-zero codes.
"""

EXIT_OK = 0
EXIT_FAILURE = 1  # the command failed: output exists, cannot write, probe framework broke, ...
EXIT_USAGE = 2  # bad command line (click's own code for usage errors)
EXIT_UNREADABLE = 3  # the input is not a readable bundle / report
EXIT_UNSAFE = 4  # the input was refused as unsafe (bomb, too large, too deep, ...)


class VllmBugError(Exception):
    """An expected failure with a one-line message and an exit code."""

    exit_code = EXIT_FAILURE


class UsageProblem(VllmBugError):
    exit_code = EXIT_USAGE


class UnreadableInput(VllmBugError):
    """Not what it claims to be: corrupt, truncated, wrong type, fails the schema, newer format."""

    exit_code = EXIT_UNREADABLE


class UnsafeInput(VllmBugError):
    """Refused on purpose: too large, decompression bomb, nesting too deep."""

    exit_code = EXIT_UNSAFE


class VllmBugWarning(UserWarning):
    """What the command line prints as 'vllm-bug: warning: ...'; the Python API issues it with warnings.warn."""
