"""Development tools: throwaway servers, certificates and the local rotation runner.

Not shipped in the Lambda functions; shared by the test suite and the local runner.
"""
