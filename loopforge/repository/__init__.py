"""Stores. ``MemoryRepository`` and ``SQLiteRepository`` are built in; ``DynamoDBRepository`` (extra
``loopforge[dynamodb]``) and ``BranchRepository`` (a data branch of a GitHub repository) load on first use."""

from __future__ import annotations

from typing import Any

from loopforge.repository.base import Page, RecordQuery, Repository
from loopforge.repository.memory import MemoryRepository
from loopforge.repository.sqlite import SQLiteRepository

__all__ = ["BranchRepository", "DynamoDBRepository", "MemoryRepository", "Page", "RecordQuery", "Repository",
           "SQLiteRepository"]


def __getattr__(name: str) -> Any:
    if name == "DynamoDBRepository":
        from loopforge.repository.dynamodb import DynamoDBRepository

        return DynamoDBRepository
    if name == "BranchRepository":
        from loopforge.repository.branch import BranchRepository

        return BranchRepository
    raise AttributeError(name)
