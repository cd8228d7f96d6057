/*
 * The subcommands of loket, one <name>_main(argc, argv) each, in the style
 * of wg(8): argv[0] is the subcommand's name, the return value is the exit
 * status (0 success, 1 failure, 2 usage error). main.c lists them in its
 * table, which is also where their usage text lives.
 */
#ifndef LOKET_SUBCOMMANDS_H
#define LOKET_SUBCOMMANDS_H

int init_main(int argc, char *argv[]);
int member_main(int argc, char *argv[]);
int pubkey_main(int argc, char *argv[]);
int status_main(int argc, char *argv[]);
int get_main(int argc, char *argv[]);
int list_main(int argc, char *argv[]);
int search_main(int argc, char *argv[]);
int log_main(int argc, char *argv[]);
int put_main(int argc, char *argv[]);
int del_main(int argc, char *argv[]);
int import_main(int argc, char *argv[]);
int rebuild_main(int argc, char *argv[]);
int verify_main(int argc, char *argv[]);
int backup_main(int argc, char *argv[]);
int restore_main(int argc, char *argv[]);
int peers_main(int argc, char *argv[]);
int checkpoints_main(int argc, char *argv[]);
int reload_main(int argc, char *argv[]);
int resume_main(int argc, char *argv[]);
int rotate_key_main(int argc, char *argv[]);
int board_main(int argc, char *argv[]);
int ask_main(int argc, char *argv[]);
int respond_main(int argc, char *argv[]);
int accept_main(int argc, char *argv[]);
int close_main(int argc, char *argv[]);
int withdraw_main(int argc, char *argv[]);
int show_main(int argc, char *argv[]);
int experts_main(int argc, char *argv[]);
int match_main(int argc, char *argv[]);
int query_main(int argc, char *argv[]);
int changes_main(int argc, char *argv[]);
int export_main(int argc, char *argv[]);
int token_main(int argc, char *argv[]);
int audit_main(int argc, char *argv[]);
int prove_main(int argc, char *argv[]);

#endif
