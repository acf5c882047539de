from ailedger.log.transparency_log import AppendResult, AuditProblem, AuditReport, TransparencyLog

__all__ = ["TransparencyLog", "AppendResult", "AuditReport", "AuditProblem"]
