"""0.1.0 import-path compatibility shim for the DynamoDB store (extra ``loopforge[dynamodb]``)::

    from loopforge.adapters.dynamodb import DynamoDBRepository

It is ``loopforge.repository.dynamodb.DynamoDBRepository``: the 0.2 single-table layout (docs/dynamodb.md),
which does not read tables written by 0.1.0.
"""

from loopforge.repository.dynamodb import DynamoDBRepository, create_table

__all__ = ["DynamoDBRepository", "create_table"]
