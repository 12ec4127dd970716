/* openapi_blob.S — embeds nginx/openapi.json, NUL-terminated, as the C string pyexec_openapi_json:
 * the MCP tool's inputSchema is its ExecuteRequest schema (mcp.c), so the two never differ. */
        .section .rodata
        .global pyexec_openapi_json
        .type pyexec_openapi_json, @object
pyexec_openapi_json:
        .incbin "nginx/openapi.json"
        .byte 0
        .size pyexec_openapi_json, . - pyexec_openapi_json
        .section .note.GNU-stack,"",@progbits
