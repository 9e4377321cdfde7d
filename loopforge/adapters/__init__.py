"""0.1.0 import-path compatibility shim: nothing lives here.

LoopForge 0.1.0 shipped its optional stores as ``loopforge.adapters.<name>``; they now live in
``loopforge.repository`` (``from loopforge.repository import DynamoDBRepository``). This package only keeps
``from loopforge.adapters.dynamodb import DynamoDBRepository, create_table`` working for code written against
0.1.0. Write new code against ``loopforge.repository``.
"""
