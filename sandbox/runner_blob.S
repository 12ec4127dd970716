/* runner_blob.S — embeds runner.py, NUL-terminated, as the C string sb_runner_py. */
        .section .rodata
        .global sb_runner_py
        .type sb_runner_py, @object
sb_runner_py:
        .incbin "sandbox/runner.py"
        .byte 0
        .size sb_runner_py, . - sb_runner_py
        .section .note.GNU-stack,"",@progbits
