"""The REST API: one front door of the invite-code engine (the admin and the commands are the others).

Views parse and validate, call one selector or service of ``spaces`` and
``invites``, and shape the answer; they never write to DynamoDB themselves.
The project-wide plumbing (the exception handler, schema helpers) is in
``lifestyle_spaces``.
"""
