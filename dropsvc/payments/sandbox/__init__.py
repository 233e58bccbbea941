"""The offline PayOS sandbox: same endpoints, envelope and signatures as PayOS, on loopback."""

from dropsvc.payments.sandbox.server import SANDBOX_API_KEY, SANDBOX_CHECKSUM_KEY, SANDBOX_CLIENT_ID, PayOSSandbox
from dropsvc.payments.sandbox.state import SandboxError

__all__ = ["SANDBOX_API_KEY", "SANDBOX_CHECKSUM_KEY", "SANDBOX_CLIENT_ID", "PayOSSandbox", "SandboxError"]
