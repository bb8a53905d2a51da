"""meshpolicy: a policy-as-code compiler for service-mesh security policy.

The pipeline is parse -> resolve -> graph -> backends -> output, joined in
:mod:`meshpolicy.pipeline`.
"""

__version__ = "0.1.0"
