"""Parsers of the text formats a bug report is made of: pure functions from text to a typed record.

This package is the leaf layer both sides share (the collector in `bundler`, the analyzer in
`analyzer`); it imports nothing of ours but its own modules, only the standard library. Every
parser here accepts any text: garbage gives None (or an empty result), never an exception, and
every pattern runs in time linear in its input (each repetition is bounded or anchored, and no
pattern can rescan what it already passed).
"""
