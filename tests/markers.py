"""Skip markers for tests that need something this machine may lack."""

import pytest

from core.int4 import unavailable_reason

needs_int4 = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
