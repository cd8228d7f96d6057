/*
 * control_board: the control command "board" (proto/CONTROL.md), the
 * question board of the whole federation as this node holds it. It checks
 * the filters a client sends (a status or kind the schema does not know is
 * refused with the list of those it does) and reads the board from the
 * store through desk/board.h.
 */
#ifndef LOKET_CONTROL_BOARD_H
#define LOKET_CONTROL_BOARD_H

#include <stddef.h>

#include <jansson.h>

/*
 * A control handler (daemon/control.h) with data a struct node: request
 * {"status"?,"topic"?,"kind"?,"limit"?}, result the array board_list gives (desk/board.h).
 */
int control_board(void *data, const json_t *req, json_t **result, char *err, size_t errlen);

#endif
