/* placeholder: webhook lands with issue 7 */
typedef int control_webhook_placeholder_t;
