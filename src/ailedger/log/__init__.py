from ailedger.log.transparency_log import AppendResult, AuditProblem, AuditReport, TransparencyLog
from ailedger.log.groupcommit import AppendRequest, GroupCommitter, GroupView, LogCommitter  # noqa: E402

__all__ = ["TransparencyLog", "AppendResult", "AuditReport", "AuditProblem", "AppendRequest", "GroupCommitter",
           "GroupView", "LogCommitter"]
