/* placeholder: admin lands with issue 7 */
typedef int control_admin_placeholder_t;
