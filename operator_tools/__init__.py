"""``secrets-rotation``: the operator's command for rotations in a real account.

``doctor`` checks one secret and its function end to end, ``status`` lists every secret
this suite's functions rotate, ``repair`` gets a stuck rotation going again. It runs on
a laptop with the operator's AWS credentials and needs boto3 only: everything that
touches the database is done by the deployed function's preflight (``common/preflight.py``).
"""
