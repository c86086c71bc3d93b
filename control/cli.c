/* placeholder: cli lands with issue 7 */
typedef int control_cli_placeholder_t;
