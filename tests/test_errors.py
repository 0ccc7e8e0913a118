"""cnn_jax.errors.first_line: the one line a CLI prints and a failure record keeps."""

from cnn_jax.errors import first_line


def test_first_line_is_the_first_non_blank_line_or_the_exception_type():
    assert first_line(ValueError("\n  bad value x\nmore detail")) == "bad value x"
    assert first_line("one\ntwo") == "one"
    assert first_line(ValueError()) == "ValueError"  # no message: its type
    assert first_line("") == "" and first_line(None) == ""
