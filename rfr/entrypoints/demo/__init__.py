"""`rfr demo`: the whole workflow, over HTTP, as a newcomer's guided lesson.

The demo is a client like any other: it only speaks the public API (``api``), against a
server it is given or one it starts (``server``), on a folder-per-identity photo set
(``dataset``). ``walkthrough`` holds the steps and what each one teaches.
"""
