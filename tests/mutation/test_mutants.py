"""The mutant list stays meaningful as the code changes (cheap; `make mutants` runs them)."""

import pytest
from mutants import MUTANTS, problems


@pytest.mark.mutation
def test_every_mutant_names_code_and_tests_that_exist():
    assert MUTANTS
    assert problems() == []
