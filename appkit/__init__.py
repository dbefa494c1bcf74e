"""The application kit: what a function that *uses* a rotated secret needs.

``appkit.retrieval`` (cached secret values), ``appkit.connections`` (sessions that
survive a rotation) and ``appkit.sessions`` (what an application needs of a session
beyond opening it). It ships in the application layer with the engines' session code
and never with the rotation functions, which do not use it.
"""
