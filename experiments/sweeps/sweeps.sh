# The pocket sweeps the experiment scripts know by name, sourced by run_pocket.sh,
# collect_results.sh and eval_fresh.sh (each run of a sweep goes to multirun/pocket-results/NAME):
#   pocket          the objective comparison             (experiment=pocket)
#   ablation        ViSurf's reward-control ablation     (experiment=pocket)
#   pocket_swapped  the comparison on the second split   (experiment=pocket_swapped)
POCKET_SWEEPS=(pocket ablation pocket_swapped)
POCKET_WORK=multirun/pocket-results

# The experiment preset a sweep's runs use (their base model is that preset's).
sweep_experiment() {
    case "$1" in
        pocket | ablation) echo pocket ;;
        pocket_swapped) echo pocket_swapped ;;
    esac
}

# Exit 2 naming SCRIPT unless every NAME is a known sweep: `check_sweeps SCRIPT NAME...`.
check_sweeps() {
    local script=$1 name; shift
    for name in "$@"; do
        [ -n "$(sweep_experiment "$name")" ] || {
            echo "$script: no sweep named '$name' (${POCKET_SWEEPS[*]})" >&2
            exit 2
        }
    done
}
