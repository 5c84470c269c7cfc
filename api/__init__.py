"""The REST API: views parse, call one selector or service, and shape the answer; they never write to DynamoDB."""
