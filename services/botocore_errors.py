"""The botocore failures that are the HTTP exchange itself failing, for every boto3
boundary (Bedrock, CloudFront, the object store's bucket calls): connecting (refused,
timed out, proxy, TLS) and the exchange (closed, reset or aborted, read timeout).
Each boundary decides what they mean for its calls."""

import botocore.exceptions

TRANSPORT_ERRORS = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)
