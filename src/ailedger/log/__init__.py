from ailedger.log.groupcommit import AppendRequest, GroupCommitter, GroupView, LogCommitter
from ailedger.log.transparency_log import AppendResult, AuditProblem, AuditReport, TransparencyLog

__all__ = [
           "AppendRequest",
           "AppendResult",
           "AuditProblem",
           "AuditReport",
           "GroupCommitter",
           "GroupView",
           "LogCommitter",
           "TransparencyLog",
]
