"""The application kit: what a function that *uses* a rotated secret needs.

``appkit.retrieval`` (cached secret values), ``appkit.connections`` (sessions that
survive a rotation) and ``appkit.sessions`` (what an application needs of a session
beyond opening it). It ships in the application layer with the engines' session code
and never with the rotation functions, which do not use it.
"""

from common.redaction import install_process_guard

# An application's Lambda may run at DEBUG too: the SDK's wire log would show every
# GetSecretValue response. Keep it out, and mask what any logger of the process writes.
install_process_guard()
