"""Views of the store for the terminal: they format what harness.store returns.

- leaderboard.py  the text leaderboard (`ftbench show`, `make bench`)
- memcheck.py     predicted vs measured memory of stored runs (`ftbench memcheck`)
"""
