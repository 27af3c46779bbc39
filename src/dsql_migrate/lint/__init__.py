"""``dsql-migrate lint``: check SQL against DSQL's rules for a capability profile, and fix it.

Library use::

    from dsql_migrate.lint import LintSettings, lint_script, fix_script
    from dsql_migrate.profiles import get_profile

    settings = LintSettings.build(get_profile("current"))
    result = fix_script("CREATE INDEX ix ON t (a);", settings)
    result.diagnostics[0].rule        # 'index_async'
    result.fixed_sql                  # 'CREATE INDEX ASYNC ix ON t (a);'

Rules live in :mod:`dsql_migrate.lint.rules`, one module per family; see ``docs/lint-rules.md``.
"""

from __future__ import annotations

from .core import REGISTRY, Diagnostic, Finding, FixResult, FixStatus, Rule, Severity
from .engine import LintResult, LintSettings, fix_script, lint_script, lint_statements

__all__ = [
    "REGISTRY",
    "Diagnostic",
    "Finding",
    "FixResult",
    "FixStatus",
    "LintResult",
    "LintSettings",
    "Rule",
    "Severity",
    "fix_script",
    "lint_script",
    "lint_statements",
]
