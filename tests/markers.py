"""Skip markers for tests that need something this machine may lack."""

import pytest

from core import native
from core.int4 import unavailable_reason

needs_int4 = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
needs_native = pytest.mark.skipif(native.unavailable_reason() is not None, reason=str(native.unavailable_reason()))
